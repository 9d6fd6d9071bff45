"""coatflow.workflows."""
