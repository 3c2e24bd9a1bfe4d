"""The analysts' review workspace behind `mitremap serve` (the `web` extra): reports kept in a
database, suggestions accepted, rejected or added to, reviewed results exported, and the
reviews fed back into training. See ARCHITECTURE.md ("The review workspace") for the modules;
`mitremap.web.app.create_app` puts them together with the routes (`mitremap.web.routers`).
"""
