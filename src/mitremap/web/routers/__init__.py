"""The REST API under `/api`, one router per resource: `session`, `analysis` (nothing kept),
`attack`, `reports`, `decisions`, `models` (retraining, the models, the reviews as training
text). Routes only parse, check who may do what (`deps`) and call the workspace's `Store`.
"""
