"""Results and routes written for other tools: ROS 2 bags of poses (bag_writer), a bag as Nano-readable files (bag_export)."""
