"""The web front end behind `mitremap serve` (the `web` extra): the app factory (`app`), its
guards (`middleware`), the REST routes, the pages and API docs, and the review `workspace`
(database, service layer, auth, models, retraining) beneath them.

A front end: the pipeline never imports it (the layer contracts in pyproject.toml say so).
"""
