from rehost.cli import main

main()
