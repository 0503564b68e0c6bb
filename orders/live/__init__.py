"""The live tables: the feed, the browser sockets and their protocol."""
