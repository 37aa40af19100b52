"""Development tools: never imported by production code (``tests/test_no_fakes_in_production.py``).

* ``webhook_payloads``: builders for the webhook bodies Meta sends (tests, benchmarks, the simulator);
* ``fake_graph``: a fake Meta Graph API (its scripted faults and records in ``fake_graph_scripting``,
  its status webhooks in ``fake_graph_status_webhooks``); ``fake_api_football`` and ``fake_feed``
  (its goal model in ``fake_feed_goal_model``): a fake API-Football;
* ``servers``: the one runner for both fakes, in a thread (tests) or as a process
  (``python -m devtools.servers graph|football``);
* ``seed``: the development data (``manage.py devstack_seed``);
* ``devstack``: the whole system on one machine (``./scripts/run``);
* ``simulator``: the WhatsApp simulator, a Django app installed and mounted only with DEBUG.

``devtools`` is itself a Django app (for the ``devstack_seed`` command), installed only with DEBUG.
"""
