"""pyinfra deploy of a relay host: exactly the files `relayops render` shows, then reloads.

    relayops deploy --inventory lab                       # validates and compiles, then this
    pyinfra -y inventory/lab.py deploys/relay.py          # the same, compiling here

The steps are relayops.deploy.tasks (pyinfra @deploy functions); the repository is
the one `relayops deploy` compiled (RELAYOPS_TARGET), else RELAYOPS_REPO, else this
checkout.
"""

from relayops.deploy.tasks import relay

relay()
