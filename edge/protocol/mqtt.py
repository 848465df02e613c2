"""Broker addresses and paho-mqtt client construction shared by the terminal's uplink,
head office's reconciler and the tools.

Every client is MQTT v5 with ``clean_start=False`` and a session expiry, so the broker
keeps subscriptions and queued QoS 1 messages across reconnects.  (paho's default,
``MQTT_CLEAN_START_FIRST_ONLY``, wipes the session on the first connect of each
process; see DESIGN §6.)  A new paho client is made for every connection, so paho's
in-memory queue never carries anything from one connection to the next: the durable
queue is the SQLite outbox.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        keepalive: int = 30,
        session_expiry: int = 7 * 24 * 3600,
    ) -> BrokerConfig:
        """``mqtt://host:1883`` or ``mqtts://host:8883`` (TLS)."""
        try:
            u = urlsplit(url)
            port = u.port
        except ValueError as e:
            raise ConfigError("broker", f"bad broker URL {url!r}: {e}") from None
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ConfigError(
                "broker", f"expected mqtt://HOST:PORT or mqtts://HOST:PORT, got {url!r}"
            )
        tls = u.scheme == "mqtts"
        return cls(
            host=u.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            username=u.username,
            password=u.password,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            keepalive=keepalive,
            session_expiry=session_expiry,
        )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def new_client(
    cfg: BrokerConfig,
    client_id: str,
    *,
    manual_ack: bool = False,
    will_topic: str | None = None,
    will_payload: bytes | None = None,
) -> mqtt.Client:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if cfg.tls:
        c.tls_set(
            ca_certs=cfg.ca_file,
            certfile=cfg.cert_file,
            keyfile=cfg.key_file,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if cfg.username is not None:
        c.username_pw_set(cfg.username, cfg.password)
    if will_topic is not None:
        c.will_set(will_topic, will_payload, qos=1, retain=True)
    return c


def connect(c: mqtt.Client, cfg: BrokerConfig) -> None:
    """Blocking TCP (and TLS) connect plus CONNECT with a persistent session."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = cfg.session_expiry
    c.connect(cfg.host, cfg.port, keepalive=cfg.keepalive, clean_start=False, properties=props)
