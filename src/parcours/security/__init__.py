"""Who may do what: principals, the access policy, and the audit trail's view of callers."""
