"""Authentication and accounts: passwords, tokens, API keys, lockout, audit."""

from __future__ import annotations

from cognitionos.services.auth.accounts import (
    AccountPolicy,
    authenticate,
    create_user,
    get_user,
    list_users,
    normalize_email,
    update_user,
)
from cognitionos.services.auth.api_keys import (
    authenticate_api_key,
    create_api_key,
    list_api_keys,
    looks_like_api_key,
    revoke_api_key,
)
from cognitionos.services.auth.audit import AuditKind, ClientInfo, list_audit_events
from cognitionos.services.auth.cache import CredentialCache, ReadStamps
from cognitionos.services.auth.changes import CredentialChange
from cognitionos.services.auth.identify import credential_from_headers, identify
from cognitionos.services.auth.principal import API_KEY_SCOPES, Principal, role_at_least
from cognitionos.services.auth.sessions import (
    TokenPair,
    TokenPolicy,
    issue_tokens,
    revoke_session,
    rotate_refresh_token,
    start_session,
)
from cognitionos.services.auth.standing import acting_principal
from cognitionos.services.auth.tokens import decode_access_token

__all__ = [
    "API_KEY_SCOPES",
    "AccountPolicy",
    "AuditKind",
    "ClientInfo",
    "CredentialCache",
    "CredentialChange",
    "Principal",
    "ReadStamps",
    "TokenPair",
    "TokenPolicy",
    "acting_principal",
    "authenticate",
    "authenticate_api_key",
    "create_api_key",
    "create_user",
    "credential_from_headers",
    "decode_access_token",
    "get_user",
    "identify",
    "issue_tokens",
    "list_api_keys",
    "list_audit_events",
    "list_users",
    "looks_like_api_key",
    "normalize_email",
    "revoke_api_key",
    "revoke_session",
    "role_at_least",
    "rotate_refresh_token",
    "start_session",
    "update_user",
]
