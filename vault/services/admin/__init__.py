"""AdminService's use cases: who may administer the vault over the API, and what each call does.

It owns the admin grants check and the access-log entry of every admin call (access.py),
the key operations run with the server's own Vault credentials (keys.py), disposal, audit
verification, legal holds and the policy (records.py), and running a long job on a thread
while its caller streams the progress (progress.py). The gRPC edge is vault/api/admin_servicer.py.
"""
