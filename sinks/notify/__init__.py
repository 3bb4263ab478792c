"""`yuqing notify`: pages on-call in Chinese chat robots from Alertmanager and the job's alert events."""
