"""The dashboard: server-rendered pages over the same services the API calls.

``users`` owns dashboard logins and their sessions; ``auth`` turns a request's cookie into a
signed-in user and checks CSRF tokens; the ``*_pages`` modules are the routes, one per area.
"""
