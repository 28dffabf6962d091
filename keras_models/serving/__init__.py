"""Deployment: export.py writes TF Serving SavedModels; client.py builds and decodes REST/gRPC requests.

Depends on `keras_models.core` only (never on `keras_models.train`), so a deployment needs no training code.
"""
