// Package trackingpresenter is the tracking-presenter module: it turns an
// order's tracking state into what the eater's app shows, including the
// "call the picker" and "contact us" cards that the experiments CallPicker
// and ContactUs switch on per eater, order and store.
package trackingpresenter
