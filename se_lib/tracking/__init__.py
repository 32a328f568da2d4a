"""MLflow helpers shared by every rule: git provenance, environment tags, one run per rule."""
