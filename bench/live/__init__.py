"""The live path end to end — simulator → feed in a real Daphne → browser sockets: P2-P5 and P8-P10.

Each figure builds its own world (:func:`bench.live.world.live_site`):

- the simulator runs in this process (:class:`TimedSimulator`), noting the moment each
  ``get_user_orders`` answer has been handed to its socket;
- a fresh SQLite database is prepared in a subprocess (``migrate``, then a user, a session and one
  qfexdash account per simulated key, pointing at the simulator);
- Daphne serves qfexdash from a subprocess (:class:`bench.harness.daphne.Daphne`) with the project's
  default settings (in-memory channel layer, reconcile 5 s, coalescing 0.5 s, 10 % rate budget), on a
  socket this process owns;
- "browsers" are asyncio ``websockets`` clients in this process, sending the session cookie and the
  page's Origin, keeping a page's view of the rows (snapshot parts, diffs in seq order, status)
  (:mod:`bench.live.viewers`).

Both ends of every latency are read with ``time.monotonic_ns()`` in this process (the simulator's
thread and the clients' loop), so no clock is compared across processes. Times start when the
simulator has handed the *last* page of a fetch to its socket: this slightly overstates the figure,
since it also counts the feed reading that (short, last) page. Everything is on 127.0.0.1, with
bounded counts and a deadline on every wait.

The figures: P2 :mod:`~bench.live.reply_latency`, P3 :mod:`~bench.live.many_viewers`, P4
:mod:`~bench.live.idle_sockets`, P5 :mod:`~bench.live.diff_bytes`, P8 :mod:`~bench.live.rate_budget`,
P9 and P10 :mod:`~bench.live.event_latency`; P3 and P4 again on two processes with PostgreSQL and Redis
:mod:`~bench.live.cluster`.
"""
