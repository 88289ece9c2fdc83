"""The consult desk: shoppers queue from the widget, agents answer from the console.

``hub`` delivers pushes to the sockets on this node (from any node, over the shop's desk
channel); ``records`` is locked access to tickets, calls and requests (records) and presence;
``desk`` runs the queue and routing; ``calls`` the in-call actions and call records; ``sockets``
the two WebSocket loops.
"""
