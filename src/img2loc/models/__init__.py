"""Backbone + cell head (torch + timm; no Lightning)."""

from img2loc.models.geolocator import GeoLocator

__all__ = ["GeoLocator"]
