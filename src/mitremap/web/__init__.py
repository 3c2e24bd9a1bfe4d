"""The web front end behind `mitremap serve` (the `web` extra): the app factory (`app`), its
guards (`middleware`), the REST API (`routers`, one per resource), the pages and API docs, and
the review `workspace` (database, service layer, auth, models, retraining) beneath them.

A front end: the core and training never import it (the layer contracts in pyproject.toml).
"""
