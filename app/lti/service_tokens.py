"""LTI service tokens: what a token endpoint's answer means, and how to learn what it grants.

A platform's registration answer says which scopes it granted, but that is a claim: the token
endpoint is where grants are enforced, and LMSes refuse in two ways.

- All or nothing, `invalid_scope` for the whole request when one scope is not granted:
  Canvas (instructure/canvas-lms, lib/canvas/oauth/grant_types/client_credentials.rb raises
  InvalidScopeError unless `valid_scopes?`, which lib/canvas/oauth/provider.rb defines as
  every requested scope being among the developer key's; lib/canvas/oauth/invalid_scope_error.rb
  is the 400 body) and Sakai (sakaiproject/sakai,
  lti/lti-blis/src/java/org/sakaiproject/lti13/LTI13Servlet.java, handleTokenPost: the first
  scope whose checkbox the admin left off answers 400 `{"error": "invalid_scope"}`).
- The overlap, saying so in the answer's `scope`: Moodle (moodle/moodle, mod/lti/token.php:
  `array_intersect($requestedscopes, $permittedscopes)`, `invalid_scope` only when it is
  empty). Sakai too answers with less than asked for scopes it does not know.

`narrow` turns either behaviour into knowledge: the scopes the endpoint grants and those it
refuses, with one token that covers every granted scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import nesting
from .constants import is_service_scope

DEFAULT_LIFETIME = 3600  # seconds, when the answer has no usable expires_in
CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True)
class AccessToken:
    """A token endpoint's grant: the token and the scopes it really covers."""

    access_token: str
    token_type: str
    scopes: tuple[str, ...]
    lifetime: int


class ScopeRefused(Exception):  # noqa: N818 - the endpoint's answer, not a fault of ours
    """The token endpoint answered `invalid_scope`: it refused the request's scopes."""

    def __init__(self, scopes: tuple[str, ...], status: int, body: str):
        super().__init__(f"invalid_scope for {' '.join(scopes)}")
        self.scopes = scopes
        self.status = status
        self.body = body


class TokenRefused(Exception):  # noqa: N818 - the endpoint's answer, not a fault of ours
    """The token endpoint refused for another reason than the scopes, or answered no token."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status} without an access token")
        self.status = status
        self.body = body


def service_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Return the LTI service scopes among `scopes`, once each, in their order."""
    return tuple(dict.fromkeys(s for s in scopes if is_service_scope(s)))


def read_token_response(status: int, text: str, asked: tuple[str, ...]) -> AccessToken:
    """Read a token endpoint's answer to a request for `asked`.

    Raise ScopeRefused for an `invalid_scope` error, TokenRefused for any other answer without
    an access token. The token's scopes are the answer's `scope` where it names some of those
    asked (RFC 6749 section 5.1: `scope` may be left out when it is what was asked), else all
    of them; scopes it adds that were not asked for are ignored.
    """
    try:
        body = nesting.loads(text)
    except ValueError:  # nesting.TooDeep included: never a RecursionError
        body = None
    if not isinstance(body, dict):
        raise TokenRefused(status, text)
    if status != 200 or not isinstance(body.get("access_token"), str):
        if status == 400 and body.get("error") == "invalid_scope":
            raise ScopeRefused(asked, status, text)
        raise TokenRefused(status, text)
    scope = body.get("scope")
    granted = asked
    if isinstance(scope, str):  # "" grants nothing (Sakai, asked only for scopes it ignores)
        answered = set(scope.split())
        granted = tuple(s for s in asked if s in answered)
    lifetime = body.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
        lifetime = DEFAULT_LIFETIME
    return AccessToken(
        access_token=body["access_token"],
        token_type=str(body.get("token_type") or "Bearer"),
        scopes=granted,
        lifetime=lifetime,
    )


@dataclass(frozen=True)
class Narrowed:
    """What asking for some scopes taught: a token for the granted ones (if any), the refused."""

    token: AccessToken | None
    granted: tuple[str, ...]
    refused: tuple[str, ...]
    requests: int


def narrow(asked: tuple[str, ...], fetch: Callable[[tuple[str, ...]], AccessToken]) -> Narrowed:
    """Ask for `asked`; on `invalid_scope`, find the granted scopes one request per scope.

    The first request asks for everything. When an all-or-nothing endpoint refuses it, the
    scopes are added back one at a time to the set known to be granted: each request asks for
    that set plus one scope, so its answer tells whether that one scope is granted, and the
    last granted answer's token covers every granted scope. At most 1 + len(asked) requests,
    and no final request for the union. (Dropping one scope at a time would not do: with two
    refused scopes every such request is refused and nothing is learned.) A grant of less than
    asked (the overlap, as Moodle answers) is learned from the answer itself.
    """
    try:
        token = fetch(asked)
    except ScopeRefused:
        if len(asked) == 1:
            return Narrowed(None, (), asked, 1)
    else:
        refused = tuple(s for s in asked if s not in token.scopes)
        return Narrowed(token, token.scopes, refused, 1)
    requests = 1
    best: AccessToken | None = None
    granted: list[str] = []
    refused_list: list[str] = []
    for scope in asked:
        if scope in granted:  # an overlapping answer granted it already
            continue
        requests += 1
        try:
            answer = fetch((*granted, scope))
        except ScopeRefused:
            refused_list.append(scope)
            continue
        if scope not in answer.scopes:
            refused_list.append(scope)
        if set(granted) <= set(answer.scopes):
            best = answer
            granted = list(answer.scopes)
    return Narrowed(
        best,
        tuple(s for s in asked if s in granted),
        tuple(s for s in asked if s in refused_list),
        requests,
    )
