# unknowndirective=value
# syntax=ignored/because-it-comes-after-a-comment
FROM busybox
