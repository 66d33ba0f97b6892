"""Models: network builders, scikit-learn pipelines and the self-describing model artifact."""
