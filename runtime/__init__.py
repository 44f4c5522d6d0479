"""What both programs run on: the systemd notify protocol, a restarting supervisor with its
backoff, and durations in words. ``agent`` and ``cloud_relay`` import it; it imports neither.
"""
