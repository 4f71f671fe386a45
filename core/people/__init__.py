"""People: the shared contact types, resolving a reference, lookups, previews, writing contacts,
name keys and matching."""
