"""Making models: labelled text from every source (`corpus`, `converters`), fitting the linear
model and its calibration (`fit`, `calibration`), the default recipe (`train`) and the
metrics (`evaluate`).

Inference (`mitremap.classify`) never imports this package: a loaded model scores reports
without the training code (the layer contracts in pyproject.toml say so).
"""
