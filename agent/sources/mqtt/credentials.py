"""What the MQTT source authenticates with: the password file and the TLS context."""

from __future__ import annotations

import ssl

from agent.errors import ConfigError
from agent.sources.mqtt.config import MqttConfig


def read_password(config: MqttConfig) -> str | None:
    """The broker password from ``password_file`` (a trailing line break dropped), if any."""
    if config.password_file is None:
        return None
    try:
        text = config.password_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"[mqtt] password_file: cannot read {config.password_file}: {exc}"
        ) from exc
    return text.rstrip("\r\n")


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    """The TLS context ``[mqtt.tls]`` asks for; ``None`` for plain TCP."""
    tls = config.tls
    if tls is None:
        return None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[mqtt.tls]: {exc}") from exc
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _ClosingSSLSocket
    return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails: paho would otherwise leave the socket open."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise
