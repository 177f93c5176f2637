"""Profiles: how an application's tables become documents."""

from rehost.profile.model import EntityOverride, Profile, SecretsConfig, load_profile
from rehost.profile.resolve import Entity, Model, Ref, resolve

__all__ = [
    "Entity",
    "EntityOverride",
    "Model",
    "Profile",
    "Ref",
    "SecretsConfig",
    "load_profile",
    "resolve",
]
