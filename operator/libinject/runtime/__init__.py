"""The running operator: Kopf operators, the webhook server, certificates, probes and metrics."""
