"""coatflow.makers."""
