"""Every form and query-string parser the dashboard's views use, so views stay thin.

``query`` reads the pages' query strings (filters, time ranges, paging, which version);
``editing``, ``prices`` and ``jobs`` check what the pages' POST forms send. Forms check fields
only: what a value means for a session, a price or a job is the services' call.
"""
