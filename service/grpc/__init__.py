"""gRPC front end (facelocal.v1.FaceDetector) over the shared detection core."""
