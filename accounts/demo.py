"""The demo accounts: one per role, in the demo town. Only `load_demo` creates them."""

DEMO_USERNAMES = {
    "coordinator": "demo-coordinator",
    "supervisor": "demo-supervisor",
    "outreach_worker": "demo-worker",
    "commissioner": "demo-commissioner",
    "admin": "demo-admin",
}
