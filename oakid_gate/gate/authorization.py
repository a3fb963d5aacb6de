"""Who may pass once signed in: the allow-lists, groups, claims and the deployer's own rule.

A signed-in user passes when every rule that is set holds:

- ``allowed_emails`` / ``allowed_domains``: the user's *verified* email is one
  of the emails, or at one of the domains (either list admits);
- ``allowed_groups``: the claim ``groups_claim`` (default ``groups``; a list, or
  a string naming one group) holds at least one of the groups;
- ``required_claims``: each ``claim=value`` holds (a list claim holds the value
  as a member; ``a.b=value`` reads the nested claim ``{"a": {"b": ...}}``;
  ``true``/``false`` and numbers match JSON booleans and numbers by their text);
- ``authorize``: the deployer's callable returns exactly ``True`` for the user
  (an exception refuses, and is logged by its type only);
- a route's ``scopes`` (:class:`RouteRules` only): the session was granted each.

They are checked at sign-in and on every request, in every mode, so a rule
changed by a restart, or claims changed at a userinfo re-read, apply at the
next request. A refusal names what was missing (:meth:`Rules.refusal`), never a
claim's value beyond what the deployer configured. ``/oauth2/auth`` may narrow
the rules per request (:func:`query_rules`: ``allowed_groups``,
``allowed_emails``, ``allowed_domains`` in its query, as oauth2-proxy's does).

A route of the app adds its own (:class:`RouteRules`: the framework helpers'
``requires``, ``login_required``): groups, claims and scopes, checked by the
same :class:`Rules`, with the gate's ``groups_claim``, after the gate's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ..errors import BadRequest, ConfigurationError
from ..settings import Settings, claim_pairs
from ..user import OakIDUser, verified_email
from .request import single_params

__all__ = ["AuthQueries", "Authorize", "RouteRules", "Rules", "query_rules"]

log = logging.getLogger("oakid_gate")

#: the deployer's own rule: the signed-in user in, ``True`` to let them pass
Authorize = Callable[[OakIDUser], bool]


class Rules:
    """The rules of one gate (or of one ``/oauth2/auth`` query), compiled once."""

    def __init__(
        self,
        *,
        emails: Iterable[str] = (),
        domains: Iterable[str] = (),
        groups: Iterable[str] = (),
        groups_claim: str = "groups",
        required_claims: Iterable[tuple[str, str]] = (),
        authorize: Authorize | None = None,
        trust_unverified_email: bool = False,
        scopes: Iterable[str] = (),
    ) -> None:
        self._emails = frozenset(e.lower() for e in emails)
        self._domains = frozenset(d.lower() for d in domains)
        self._groups = tuple(dict.fromkeys(groups))
        self._group_set = frozenset(self._groups)
        self._groups_claim = groups_claim
        self._required = tuple(required_claims)
        self._authorize = authorize
        self._trust_unverified = trust_unverified_email
        self._scopes = tuple(dict.fromkeys(scopes))
        #: whether any rule is set at all (the hot path skips the check otherwise)
        self.restricted = bool(
            self._emails
            or self._domains
            or self._groups
            or self._required
            or authorize
            or self._scopes
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            emails=settings.allowed_emails,
            domains=settings.allowed_domains,
            groups=settings.allowed_groups,
            groups_claim=settings.groups_claim,
            required_claims=claim_pairs(settings.required_claims),
            authorize=settings.authorize,
            trust_unverified_email=settings.allow_unverified_email,
        )

    def narrowed(self, extra: Rules) -> Rules:
        """These rules and ``extra``'s too (``/oauth2/auth``'s per-request rules)."""
        return _Both(self, extra)

    def refusal(self, user: OakIDUser, scopes: Collection[str] = ()) -> str | None:
        """What ``user`` (whose session was granted ``scopes``) lacks to pass, in words
        for the 403 page; ``None`` when allowed."""
        claims = user.claims
        if (self._emails or self._domains) and not self._email_allowed(claims):
            return "a verified email address " + _listing(
                [*sorted(self._emails), *(f"@{d}" for d in sorted(self._domains))]
            )
        if self._groups and not self._in_a_group(claims.get(self._groups_claim)):
            return f"membership of one of the groups {', '.join(self._groups)}"
        for name, expected in self._required:
            if not _claim_holds(claims, name, expected):
                return f"the claim {name}={expected}"
        missing = [s for s in self._scopes if s not in scopes]
        if missing:
            return ("the scopes " if len(missing) > 1 else "the scope ") + ", ".join(missing)
        if self._authorize is not None and not self._authorized(user):
            return "the approval of this site's own access rule"
        return None

    def _email_allowed(self, claims: Mapping[str, Any]) -> bool:
        email = verified_email(claims, trust_unverified=self._trust_unverified)
        if email is None:
            return False
        email = email.lower()
        return email in self._emails or email.rpartition("@")[2] in self._domains

    def _in_a_group(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self._group_set
        if isinstance(value, list):
            return any(isinstance(g, str) and g in self._group_set for g in value)
        return False

    def _authorized(self, user: OakIDUser) -> bool:
        assert self._authorize is not None
        try:
            return self._authorize(user) is True
        except Exception as exc:
            name = getattr(self._authorize, "__qualname__", "authorize")
            log.error("the authorize rule %s raised %s: access refused", name, type(exc).__name__)
            return False


class _Both(Rules):
    """Two sets of rules, both of which must hold."""

    def __init__(self, first: Rules, second: Rules) -> None:
        self._first, self._second = first, second
        self.restricted = first.restricted or second.restricted

    def refusal(self, user: OakIDUser, scopes: Collection[str] = ()) -> str | None:
        return self._first.refusal(user, scopes) or self._second.refusal(user, scopes)


class RouteRules:
    """The rules of one route of the app, as the framework helpers take them:

    - ``groups``: the user is in at least one (the ``groups_claim`` of the gate);
    - ``claims``: each holds (a mapping ``{"department": "eng"}`` or ``claim=value``
      entries, matched as ``required_claims`` is);
    - ``scopes``: the session was granted each.

    Written where the route is written, so checked when the module is imported (a
    mistake is a :class:`~oakid_gate.errors.ConfigurationError`); compiled into
    :class:`Rules` once per gate (:meth:`rules`): the same checks as the gate's own.
    """

    def __init__(
        self,
        *,
        groups: str | Iterable[str] = (),
        claims: Mapping[str, Any] | Iterable[str] = (),
        scopes: str | Iterable[str] = (),
    ) -> None:
        self.groups = _names("groups", groups)
        self.claims = _claims(claims)
        self.scopes = _names("scopes", scopes)
        self.restricted = bool(self.groups or self.claims or self.scopes)
        self._compiled: tuple[Settings, Rules] | None = None

    def rules(self, settings: Settings) -> Rules:
        """These rules for the gate of ``settings`` (its ``groups_claim``)."""
        compiled = self._compiled
        if compiled is None or compiled[0] is not settings:
            rules = Rules(
                groups=self.groups,
                groups_claim=settings.groups_claim,
                required_claims=self.claims,
                scopes=self.scopes,
            )
            compiled = self._compiled = (settings, rules)
        return compiled[1]

    def __repr__(self) -> str:
        return f"RouteRules(groups={self.groups!r}, claims={self.claims!r}, scopes={self.scopes!r})"


def _names(name: str, value: str | Iterable[str]) -> tuple[str, ...]:
    """Groups or scopes: one name, or several (never a string read letter by letter). A
    name is not empty and has no space at either end; a scope has none at all."""
    names = (value,) if isinstance(value, str) else tuple(value)
    for n in names:
        if not isinstance(n, str) or not n or n != n.strip():
            raise ConfigurationError(name, f"{n!r} is not a name (empty, or spaces around it)")
        if name == "scopes" and len(n.split()) > 1:
            raise ConfigurationError(name, f"{n!r} is several scopes: give a list")
    return names


def _claims(value: Mapping[str, Any] | Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``{"claim": value}`` or ``claim=value`` entries as ``(claim, text)`` pairs; a value
    is matched by its text (``True`` as ``true``, ``3`` as ``3``), as ``required_claims``."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Mapping):
        return claim_pairs(value, "claims")
    pairs = []
    for name, expected in value.items():
        if isinstance(expected, bool):
            text = "true" if expected else "false"
        elif isinstance(expected, (str, int, float)):
            text = str(expected)
        else:
            raise ConfigurationError("claims", f"{name!r}: a value is a string, number or bool")
        if not isinstance(name, str) or not name or name != name.strip() or not text:
            raise ConfigurationError("claims", f"{name!r}: {expected!r} is not a claim and a value")
        pairs.append((name, text))
    return tuple(pairs)


def _listing(items: list[str]) -> str:
    if len(items) == 1:
        return "(" + items[0] + ")"
    return "(one of " + ", ".join(items) + ")"


def _claim_holds(claims: Mapping[str, Any], name: str, expected: str) -> bool:
    value: Any = claims.get(name, _MISSING)
    if value is _MISSING and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
    if isinstance(value, list):
        return any(_same(v, expected) for v in value)
    return _same(value, expected)


_MISSING: Any = object()


def _same(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return expected == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return expected == str(value)
    return isinstance(value, str) and value == expected


class AuthQueries:
    """``/oauth2/auth``'s rules for each query string met, compiled once (bounded): the
    gate's own rules and the query's, both of which must hold."""

    def __init__(self, rules: Rules, settings: Settings, size: int = 256) -> None:
        self._rules = rules
        self._groups_claim = settings.groups_claim
        self._trust_unverified = settings.allow_unverified_email
        self._size = size
        self._by_query: dict[str, Rules] = {}

    def rules(self, query_string: str) -> Rules:
        """The rules for this query; :class:`~oakid_gate.errors.BadRequest` for a query
        that repeats a parameter or lists nothing."""
        if not query_string:
            return self._rules
        known = self._by_query.get(query_string)
        if known is not None:
            return known
        try:
            extra = query_rules(
                single_params(query_string), self._groups_claim, self._trust_unverified
            )
        except ValueError as exc:
            raise BadRequest(f"The rules in the query cannot be read: {exc}.") from None
        rules = self._rules.narrowed(extra) if extra.restricted else self._rules
        if len(self._by_query) >= self._size:
            self._by_query.clear()
        self._by_query[query_string] = rules
        return rules


def query_rules(params: Mapping[str, str], groups_claim: str, trust_unverified: bool) -> Rules:
    """The rules ``/oauth2/auth``'s query adds, from its (single) parameters; a value
    is a comma-separated list. Raises :class:`ValueError` for an empty list."""

    def items(name: str) -> tuple[str, ...]:
        raw = params.get(name)
        if raw is None:
            return ()
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise ValueError(f"{name} is empty")
        return values

    emails, domains = items("allowed_emails"), items("allowed_domains")
    if any("@" not in e for e in emails) or any("@" in d for d in domains):
        raise ValueError("allowed_emails holds emails, allowed_domains domains")
    return Rules(
        emails=emails,
        domains=domains,
        groups=items("allowed_groups"),
        groups_claim=groups_claim,
        trust_unverified_email=trust_unverified,
    )
