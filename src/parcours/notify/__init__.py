"""NdE (Notification d'Événements): events declared from care activity, who is notified, and
(``delivery``) how. The resource shapes shared by both halves are in ``parcours.notify.model``."""
