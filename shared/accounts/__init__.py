"""Who may use the portal: customers, contacts, portal logins, sessions, staff, API tokens."""
