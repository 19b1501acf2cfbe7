"""``zoo serve``: every locally available model in a browser tab, each tab also an HTTP endpoint.

The web dependency (gradio) is the ``serve`` extra: nothing in this package's
``__init__``, ``models`` or ``command`` modules imports it, so ``zoo --help``
and ``zoo list`` stay light. Plugins contribute a tab per architecture through
the ``register_demos`` hook (see ``zoo_core.hookspecs``); their ``demo.py``
builds it with the :class:`zoo_core.serve.tab.Tab` they are handed.
"""

INSTALL_HINT = ("install the web extra: pip install 'zoo-core[serve]' "
                "(in a checkout: pip install -r requirements.txt, which includes it)")
