"""Type stubs of the native module (checked against it by mypy.stubtest in CI)."""

import datetime
import os
from types import TracebackType
from typing import Any, Awaitable, Callable, Mapping, Optional, Sequence, Tuple, Type, Union, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "__version__",
    "LETS_ENCRYPT_PRODUCTION",
    "LETS_ENCRYPT_STAGING",
    "ZEROSSL",
    "GOOGLE_TRUST_SERVICES",
    "GOOGLE_TRUST_SERVICES_STAGING",
    "Config",
    "Manager",
    "Certificate",
    "peek_client_hello",
    "https_redirect_location",
]

__version__: str
LETS_ENCRYPT_PRODUCTION: str
LETS_ENCRYPT_STAGING: str
ZEROSSL: str
GOOGLE_TRUST_SERVICES: str
GOOGLE_TRUST_SERVICES_STAGING: str

def https_redirect_location(host: str, https_port: int, path_and_query: str) -> Optional[str]: ...
def peek_client_hello(data: bytes) -> Optional[Tuple[Optional[str], list[bytes]]]: ...

@final
class Config:
    def __new__(
        cls,
        *,
        ca: Optional[str] = None,
        email: Optional[str] = None,
        agreed: bool = False,
        trusted_roots_pem: Optional[Union[str, bytes]] = None,
        key_type: Optional[str] = None,
        renewal_window_ratio: Optional[float] = None,
        renew_check_interval: Optional[float] = None,
        disable_http_challenge: bool = False,
        disable_tls_alpn_challenge: bool = False,
        alt_http_port: Optional[int] = None,
        alt_tls_alpn_port: Optional[int] = None,
        listen_host: Optional[str] = None,
        challenge_preference: Optional[Sequence[str]] = None,
        disable_distributed_solvers: bool = False,
        eab_key_id: Optional[str] = None,
        eab_hmac_key: Optional[str] = None,
        preferred_chain_root_cns: Optional[Sequence[str]] = None,
        preferred_chain_issuer_cns: Optional[Sequence[str]] = None,
        preferred_chain_smallest: bool = False,
        profile: Optional[str] = None,
        must_staple: bool = False,
        disable_ocsp_stapling: bool = False,
        ocsp_responder_overrides: Optional[Mapping[str, str]] = None,
        ocsp_check_interval: Optional[float] = None,
        reuse_private_keys: bool = False,
        order_timeout: Optional[float] = None,
        rate_limit: Optional[Tuple[int, float]] = None,
        retry_intervals: Optional[Sequence[float]] = None,
        retry_max_total: Optional[float] = None,
        storage: Optional[Union[str, "os.PathLike[str]", Any]] = None,
        on_event: Optional[Callable[[str, dict[str, Any]], Optional[Awaitable[None]]]] = None,
        on_demand_decision: Optional[Callable[[str], Any]] = None,
        on_demand_ask: Optional[str] = None,
        on_demand_allow: Optional[Sequence[str]] = None,
        on_demand_rate_limit: Optional[Tuple[int, float]] = None,
        on_demand_obtain_timeout: Optional[float] = None,
        cache_capacity: Optional[int] = None,
        dns_provider: Optional[Union[str, Mapping[str, Any], Any]] = None,
        dns_ttl: Optional[float] = None,
        dns_propagation_delay: Optional[float] = None,
        dns_propagation_timeout: Optional[float] = None,
        dns_poll_interval: Optional[float] = None,
        dns_resolvers: Optional[Sequence[str]] = None,
        dns_override_domain: Optional[str] = None,
        dns_follow_cname: Optional[bool] = None,
        callback_timeout_storage: Optional[float] = None,
        callback_timeout_lock: Optional[float] = None,
        callback_timeout_dns: Optional[float] = None,
        callback_timeout_decision: Optional[float] = None,
        callback_timeout_events: Optional[float] = None,
        issuers: Optional[Sequence[Union[str, Mapping[str, Any]]]] = None,
        issuer_policy: Optional[str] = None,
    ) -> "Config": ...
    @property
    def ca(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def retry_intervals(self) -> list[float]: ...
    @property
    def retry_max_total(self) -> float: ...
    @property
    def issuer_key(self) -> str: ...

@final
class Certificate:
    @property
    def chain_pem(self) -> str: ...
    @property
    def key_pem(self) -> str: ...
    @property
    def chain_der(self) -> list[bytes]: ...
    @property
    def key_der(self) -> bytes: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def not_before(self) -> datetime.datetime: ...
    @property
    def not_after(self) -> datetime.datetime: ...
    @property
    def ocsp_staple(self) -> Optional[bytes]: ...
    @property
    def ocsp_status(self) -> Optional[str]: ...
    @property
    def is_managed(self) -> bool: ...
    @property
    def hash(self) -> bytes: ...
    @property
    def serial(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@disjoint_base
class Manager:
    def __new__(cls, config: Config) -> Self: ...
    def manage_sync(self, names: Sequence[str]) -> None: ...
    def manage(self, names: Sequence[str]) -> Awaitable[None]: ...
    def manage_background(self, names: Sequence[str]) -> None: ...
    def obtain_sync(self, name: str) -> Certificate: ...
    def obtain(self, name: str) -> Awaitable[Certificate]: ...
    def renew_sync(self, name: str) -> Certificate: ...
    def renew(self, name: str) -> Awaitable[Certificate]: ...
    def revoke_sync(self, name: str, reason: Optional[Union[str, int]] = None) -> None: ...
    def revoke(self, name: str, reason: Optional[Union[str, int]] = None) -> Awaitable[None]: ...
    def get_certificate(self, server_name: str) -> Optional[Certificate]: ...
    def add_certificate(self, chain_pem: Union[str, bytes], key_pem: Union[str, bytes]) -> Certificate: ...
    def http_challenge_answer_sync(self, host: str, path: str) -> Optional[str]: ...
    def http_challenge_answer(self, host: str, path: str) -> Awaitable[Optional[str]]: ...
    def tls_alpn_challenge_certificate(self, server_name: str, alpn: Sequence[bytes]) -> Awaitable[Optional[Certificate]]: ...
    def certificate_for_handshake(self, server_name: Optional[str], alpn: Optional[Sequence[bytes]] = None) -> Awaitable[Certificate]: ...
    def certificate_for_handshake_sync(self, server_name: Optional[str], alpn: Optional[Sequence[bytes]] = None) -> Certificate: ...
    def close(self) -> None: ...
    def aclose(self) -> Awaitable[None]: ...
    @property
    def issuer_key(self) -> str: ...
    @property
    def issuer_keys(self) -> list[str]: ...
    def local_root_pem_sync(self) -> str: ...
    def local_root_pem(self) -> Awaitable[str]: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
