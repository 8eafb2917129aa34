"""HTTP layer: parses requests, calls the domain, serializes ODK-X entities."""
