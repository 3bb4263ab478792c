"""The small core every Yuqing package shares: the Post contract, settings, user-facing
errors, risk levels and their playbooks. It imports nothing from the feature packages
(ingest, scoring, sinks) or the app layer (yuqing), so that they can all import it."""
