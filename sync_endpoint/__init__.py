"""ODK-X sync server: the odktables REST protocol 2.0 on aiohttp."""

__version__ = "0.1.0"
