"""Where results go: JSON lines, the status line, the window and the live web view; ROS 2 bags of poses
(bag_writer) and a bag drive as files the Nano reads (bag_export)."""
