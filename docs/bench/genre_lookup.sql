-- Genre lookups at 1M songs: a jsonb list with a GIN index (what the catalog
-- stores) against a song-genre table with a b-tree. Run on a scratch database:
--   createdb -h 127.0.0.1 -U postgres scratch_genres
--   psql -h 127.0.0.1 -U postgres -d scratch_genres -f docs/bench/genre_lookup.sql
--   dropdb -h 127.0.0.1 -U postgres scratch_genres
-- 2,664 genres (as many as ../shared/data/data_by_genres.csv), Zipf-like
-- popularity, 1-4 genres per song (an artist's genres in the flagship export).
\timing on
SET max_parallel_workers_per_gather = 0;
DROP TABLE IF EXISTS g_song, g_genre, g_song_genre;
CREATE TABLE g_genre (id int PRIMARY KEY, name text UNIQUE);
INSERT INTO g_genre SELECT i, 'genre ' || i FROM generate_series(1, 2664) i;
SELECT setseed(0.42);
CREATE TABLE g_song (id bigint PRIMARY KEY, genres jsonb NOT NULL) WITH (fillfactor = 60);
\echo '-- load 1M songs, no genre index'
INSERT INTO g_song
SELECT s, (SELECT coalesce(jsonb_agg(DISTINCT 'genre ' || least(2664, floor(exp(random() * ln(2664)))::int)), '[]')
           FROM generate_series(1, 1 + (s % 4)) k WHERE s > 0)
FROM generate_series(1, 1000000) s;
ANALYZE g_song;
\echo '-- build the GIN index (jsonb_path_ops)'
CREATE INDEX g_song_genres ON g_song USING gin (genres jsonb_path_ops);
\echo '-- song-genre table and its b-tree'
CREATE TABLE g_song_genre AS
  SELECT s.id AS song_id, substr(e, 7)::int AS genre_id FROM g_song s, jsonb_array_elements_text(s.genres) e;
CREATE INDEX g_song_genre_idx ON g_song_genre (genre_id, song_id);
ANALYZE g_song; ANALYZE g_song_genre;
SELECT pg_size_pretty(pg_relation_size('g_song_genres')) AS gin_size,
       pg_size_pretty(pg_total_relation_size('g_song_genre')) AS table_and_btree_size;
\echo '-- how many songs carry a common, a middling and a rare genre'
SELECT (SELECT count(*) FROM g_song WHERE genres @> '["genre 1"]') AS common,
       (SELECT count(*) FROM g_song WHERE genres @> '["genre 40"]') AS middling,
       (SELECT count(*) FROM g_song WHERE genres @> '["genre 2000"]') AS rare;
\echo '-- GIN: first 50 songs of a genre by id (a page), common / middling / rare'
SELECT count(*) FROM (SELECT id FROM g_song WHERE genres @> '["genre 1"]' ORDER BY id LIMIT 50) t;
SELECT count(*) FROM (SELECT id FROM g_song WHERE genres @> '["genre 40"]' ORDER BY id LIMIT 50) t;
SELECT count(*) FROM (SELECT id FROM g_song WHERE genres @> '["genre 2000"]' ORDER BY id LIMIT 50) t;
\echo '-- GIN: every id of a middling / rare genre'
SELECT count(id) FROM g_song WHERE genres @> '["genre 40"]';
SELECT count(id) FROM g_song WHERE genres @> '["genre 2000"]';
\echo '-- GIN: any of two genres'
SELECT count(id) FROM g_song WHERE genres @> '["genre 40"]' OR genres @> '["genre 41"]';
\echo '-- table: the same lookups'
SELECT count(*) FROM (SELECT song_id FROM g_song_genre WHERE genre_id = 1 ORDER BY song_id LIMIT 50) t;
SELECT count(*) FROM (SELECT song_id FROM g_song_genre WHERE genre_id = 40 ORDER BY song_id LIMIT 50) t;
SELECT count(*) FROM (SELECT song_id FROM g_song_genre WHERE genre_id = 2000 ORDER BY song_id LIMIT 50) t;
SELECT count(song_id) FROM g_song_genre WHERE genre_id = 40;
SELECT count(song_id) FROM g_song_genre WHERE genre_id = 2000;
\echo '-- write cost: rewrite 100k songs genres with the GIN index in place'
UPDATE g_song SET genres = genres || '["extra"]' WHERE id <= 100000;
\echo '-- write cost: the same with no GIN index'
DROP INDEX g_song_genres;
UPDATE g_song SET genres = genres - 'extra' WHERE id <= 100000;
DROP TABLE g_song, g_genre, g_song_genre;
