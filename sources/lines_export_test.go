package sources

import "io"

// SetOpenFile replaces the function that the File sources use to open
// their file, until restore is called. Tests are not parallel while it is
// in effect.
func SetOpenFile(open func(path string) (io.ReadCloser, error)) (restore func()) {
	old := openSourceFile
	openSourceFile = open
	return func() { openSourceFile = old }
}
