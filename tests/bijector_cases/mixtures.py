"""Registry cases (see bijector_cases/__init__.py)."""
CASES = {}
