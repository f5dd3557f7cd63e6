from django.core.paginator import Paginator
from django.shortcuts import render

from . import selectors


def home(request):
    search = request.GET.get("q", "").strip()
    # Paginator counts the matching rows (a COUNT(*)): fine for the demo
    # catalog; the pages of issue #5 move to keyset pagination for 1M songs.
    page = Paginator(selectors.song_list(search=search), 50, allow_empty_first_page=True).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "songs/home.html",
        {
            "page": page,
            "search": search,
            "counts": selectors.catalog_counts(),
            "last_import": selectors.import_job_latest(),
        },
    )
