"""The parts of one gate that every rule module may need, built once from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings
from .access import PublicPaths, WebSocketOrigins
from .authorization import AuthQueries, Rules
from .cookies import Cookies
from .forwarded import TrustedProxies
from .lifecycle import Lifecycle
from .pages import Pages
from .provider import Provider
from .records import app_name, session_key
from .replies import Replies
from .request import Origin
from .sealing import Sealer

__all__ = ["Parts"]


@dataclass(frozen=True, slots=True)
class Parts:
    """Settings and the rules worked out from them, shared by the core's modules."""

    settings: Settings
    cookies: Cookies
    origin: Origin
    replies: Replies
    lifecycle: Lifecycle
    provider: Provider
    #: who may pass once signed in (:mod:`.authorization`)
    rules: Rules
    #: ``/oauth2/auth``'s rules per query string
    auth_queries: AuthQueries
    public_paths: PublicPaths
    websocket_origins: WebSocketOrigins
    proxies: TrustedProxies
    #: seals sign-ins under way into their cookies (:mod:`.pending`)
    pending: Sealer
    #: seals a logout at the provider into its cookie (:mod:`.logout`): a key of its own
    logout: Sealer
    #: which app's sessions these are (:func:`~.records.session_key`)
    app: str

    def session_key(self, sid: str) -> str:
        """The store key of this app's session cookie value ``sid``."""
        return session_key(self.app, sid)

    @classmethod
    def build(cls, settings: Settings) -> Parts:
        pages = Pages(
            settings.page_templates,
            prefix=settings.prefix,
            app_name=settings.app_name,
            logo_url=settings.logo_url,
        )
        return cls(
            settings=settings,
            cookies=Cookies(settings),
            origin=(origin := Origin(settings)),
            replies=Replies(settings.prefix, pages, origin),
            lifecycle=Lifecycle(settings),
            provider=Provider(settings),
            rules=(rules := Rules.from_settings(settings)),
            auth_queries=AuthQueries(rules, settings),
            public_paths=PublicPaths(settings.public_paths, settings.root_path, settings.prefix),
            websocket_origins=WebSocketOrigins(settings),
            proxies=TrustedProxies(settings.trusted_proxies),
            pending=Sealer([s.reveal() for s in settings.secret], "pending sign-in"),
            logout=Sealer([s.reveal() for s in settings.secret], "provider logout"),
            app=app_name(settings.issuer, settings.client_id),
        )
