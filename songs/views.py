from django.core.paginator import Paginator
from django.shortcuts import render

from . import selectors


def home(request):
    search = request.GET.get("q", "").strip()
    # Paginator.count would COUNT(*) the whole table; the header shows the
    # cached catalog counts instead.
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
