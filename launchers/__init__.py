"""coatflow.launchers."""
