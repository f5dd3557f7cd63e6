"""Server-rendered pages of the engine: browse (dashboard, clusters, songs,
runs), discover (predict, recommend, path, radio) and playlists."""
