"""HTTP routes of api.md, one module per resource; the app is assembled in `saferoom.app`."""
