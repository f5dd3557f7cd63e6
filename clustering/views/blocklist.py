"""A listener's blocklist: the page that lists it, and the block / unblock
buttons of the song page (plain forms, so they work without scripts)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from .. import selectors, services
from ..errors import BlocklistError

KIND_LABELS = {"artist": "Artists", "song": "Songs", "genre": "Genres"}


def _back(request: HttpRequest) -> str:
    """Where a block or unblock returns: the page it came from (same site only), else the blocklist."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/blocklist/"


@require_http_methods(["GET", "HEAD", "POST"])
def blocklist(request: HttpRequest) -> HttpResponse:
    """GET: your blocked artists, songs and genres. POST (action=block or
    unblock, type, id, next): change them and return to ``next``."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        action, kind, value = (request.POST.get(name, "") for name in ("action", "type", "id"))
        try:
            if action == "block":
                item, created = services.blocklist_add(user=request.user, kind=kind, value=value)
                messages.success(
                    request,
                    f"Blocked {item.kind} “{item.label}”: it is left out of everything you are shown."
                    if created
                    else f"“{item.label}” was already blocked.",
                )
            elif action == "unblock":
                if services.blocklist_remove(user=request.user, kind=kind, value=value):
                    messages.success(request, f"Unblocked {kind} “{value}”.")
                else:
                    messages.info(request, f"{kind.capitalize()} “{value}” was not blocked.")
            else:
                messages.error(request, "Choose to block or to unblock.")
        except BlocklistError as exc:
            messages.error(request, str(exc))
        return redirect(_back(request))
    items = selectors.blocklist_of(user=request.user)
    groups = [
        {"kind": kind, "title": title, "items": [item for item in items if item.kind == kind]}
        for kind, title in KIND_LABELS.items()
    ]
    return render(
        request,
        "clustering/blocklist.html",
        {"nav": "blocklist", "groups": groups, "total": len(items), "max_items": services.BLOCKLIST_MAX},
    )
