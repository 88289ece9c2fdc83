"""The consult desk: shoppers queue from the widget, agents answer from the console.

``hub`` delivers pushes to the sockets on this node (from any node, over the shop's desk
channel); ``records`` is typed, locked access to the ``DeskStore``; ``desk`` runs the queue and
routing; ``calls`` the in-call actions and call records; ``sockets`` the two WebSocket loops.
"""
