"""Pages of the catalog: search, and the small JSON endpoints the pages'
pickers use (``/search.json``, ``/artists.json``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from . import selectors


def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    page = selectors.song_search_page(search=query, after=request.GET.get("after"), before=request.GET.get("before"))
    return render(
        request,
        "songs/search.html",
        {
            "nav": "search",
            "q": query,
            "page": page,
            "base_query": urlencode({"q": query}) if query else "",
            "has_songs": bool(page.items) or selectors.catalog_has_songs(),
        },
    )


@require_GET
def search_json(request: HttpRequest) -> JsonResponse:
    """Up to ten songs matching ``q`` (title or artist), for the pickers of the pages."""
    query = request.GET.get("q", "").strip()[:200]
    return JsonResponse({"results": selectors.song_suggestions(search=query) if len(query) >= 2 else []})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page without a <link rel=icon> (the admin's)."""
    return redirect(static("favicon.svg"), permanent=True)


@require_GET
def artists_json(request: HttpRequest) -> JsonResponse:
    """Up to ten artists whose name contains ``q``, names starting with it
    first, with their song counts (the recommendation page's artist picker)."""
    query = request.GET.get("q", "").strip()[:200]
    if len(query) < 2:
        return JsonResponse({"results": []})
    return JsonResponse({"results": selectors.artist_suggestions(search=query)})
